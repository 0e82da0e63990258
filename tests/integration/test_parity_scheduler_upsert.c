/* SPDX-License-Identifier: MIT */
/* Node BullMQ's job_scheduler.test.ts, the cases about upserting a scheduler
 * again: what happens to the iteration already made (delayed, waiting,
 * paused, prioritized, active), offsets, and the scheduler's jobs under
 * remove, drain and clean. Node freezes its clock with sinon; these run on
 * the real one, so where Node compares with a frozen Date.now() they compare
 * with the instants taken around the call, or with the job's own timestamp. */
#include "test_sched_util.h"

TestSuite(parity_scheduler_upsert, .timeout = 60);

/* node: "[when job schedulers are upserted in quick succession] should create only one job scheduler and one delayed job" */
Test(parity_scheduler_upsert, quick_succession) {
    ph *h = ph_new("q");
    bullc_worker *w = manual_worker(h);
    UPSERT(h, "test", every(5 * 60000));
    bullc_job *first = get_next_job(h, w, "test-token");
    for (int i = 0; i < 3; i++) UPSERT(h, "test", every(5 * 60000));
    cr_assert_eq(nschedulers(h), 1);
    complete(h, first);
    /* the iteration the manual worker scheduled, upserted three times over */
    cr_assert_eq(ph_count(h, "delayed") + ph_count(h, "waiting"), 1);
    ph_end(h);
}

/* node: "[when job schedulers are upserted in quick succession] should create only one job scheduler and one delayed job with different settings" */
Test(parity_scheduler_upsert, quick_succession_different_settings) {
    ph *h = ph_new("q");
    bullc_worker *w;
    bullc_job *job;
    int64_t first = every_minute_first_taken(h, &w, &job);
    UPSERT(h, "test", every(2 * 60000));
    UPSERT(h, "test", every(3 * 60000));
    int64_t t0 = now_ms();
    UPSERT(h, "test", every(4 * 60000));
    int64_t t1 = now_ms();
    /* the offset of the first upsert, where its first slot fell in the minute */
    int64_t next = assert_the_test_scheduler(h, 240000, first % 60000, 2, t0, t1);
    complete(h, job);
    job = get_next_job(h, w, "my-token");
    cr_assert_eq(ph_count(h, "delayed") + ph_count(h, "waiting"), 1);
    cJSON *l = schedulers(h);
    cr_assert_eq(cJSON_GetArraySize(l), 1);
    cJSON *s = cJSON_GetArrayItem(l, 0);
    cr_assert_eq(num_field(s, "next"), next + 4 * 60000);
    cr_assert_eq(num_field(s, "iterationCount"), 3);
    cr_assert_eq(num_field(s, "every"), 240000);
    cJSON_Delete(l);
    complete(h, job);
    ph_end(h);
}

/* Waits until the current second's millisecond is in [from, to). */
static void align_ms(int from, int to) {
    for (int i = 0; i < 2000; i++) {
        int ms = (int)(now_ms() % 1000);
        if (ms >= from && ms < to) return;
        uv_sleep(1);
    }
    cr_assert_fail("the clock never reached the window");
}

/* Node's slot for every + offset: the next one after now. */
static void offset_case(int from, int to, bool future) {
    ph *h = ph_new("q");
    const int64_t ev = 1000, off = 500;
    int64_t t0 = 0, t1 = 0;
    /* the upsert must take its "now" inside one known half of a second */
    for (int tries = 0; tries < 20; tries++) {
        align_ms(from, to);
        t0 = now_ms();
        bullc_scheduler_opts *o = every(ev);
        bullc_scheduler_opts_set_offset(o, off);
        char *job = upsert(h, "test-offset", o, "test", "{\"foo\":\"bar\"}", NULL);
        t1 = now_ms();
        cr_assert_not_null(job);
        bullc_free(job);
        if (t0 / 1000 == t1 / 1000 && (t0 % 1000 >= off) == (t1 % 1000 >= off)) break;
        bullc_error err = {0};
        cr_assert_eq(bullc_queue_remove_job_scheduler(h->q, "test-offset", &err), 0);
    }
    int64_t base = t0 / ev * ev + off;
    cr_assert_eq(base > t0, future, "this case is the other branch");
    int64_t expected = future ? base : base + ev;
    cJSON *l = schedulers(h);
    cr_assert_eq(cJSON_GetArraySize(l), 1);
    cr_assert_eq(num_field(cJSON_GetArrayItem(l, 0), "next"), expected);
    cr_assert_eq(num_field(cJSON_GetArrayItem(l, 0), "offset"), off);
    cJSON_Delete(l);
    cr_assert_eq(ph_count(h, "delayed"), 1, "the job waits for its slot (a delay > 0)");
    ph_end(h);
}

/* node: "[when job schedulers are upserted in quick succession] should respect offset when upserting a job scheduler with every" */
Test(parity_scheduler_upsert, offset_slot_past) { offset_case(600, 800, false); }

/* node: "[when job schedulers are upserted in quick succession] should respect offset on first upsert when offset slot is in the future" */
Test(parity_scheduler_upsert, offset_slot_future) { offset_case(50, 250, true); }

/* node: "[when 'every' and offset are provided on upsert] aligns the first job to the next offset slot after now" */
Test(parity_scheduler_upsert, offset_aligns_first_job) {
    ph *h = ph_new("q");
    bullc_scheduler_opts *o = every(60000);
    bullc_scheduler_opts_set_offset(o, 7000);
    int64_t t0 = now_ms();
    char *id = upsert(h, "aligned", o, NULL, NULL, NULL);
    int64_t t1 = now_ms();
    int64_t at = strtoll(id + strlen("repeat:aligned:"), NULL, 10);
    /* the job's id carries its slot: on the offset, after now, within one interval */
    cr_assert_eq(at % 60000, 7000, "%s", id);
    cr_assert(at > t0 && at <= t1 + 60000, "%s", id);
    cJSON *job = ph_job(h, id);
    cr_assert_eq(ph_jnum(job, "timestamp") + ph_jnum(job, "delay"), (double)at);
    cJSON_Delete(job);
    bullc_free(id);
    ph_end(h);
}

/* Promotes the scheduler's only delayed job. */
static void promote_delayed(ph *h) {
    cJSON *d = ph_jobs(h, "delayed", 0, -1, true);
    cr_assert_eq(cJSON_GetArraySize(d), 1);
    bullc_error err = {0};
    const char *id = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(d, 0), "id")->valuestring;
    cr_assert_eq(bullc_queue_promote_job(h->q, id, &err), 0, "%s", err.message);
    cJSON_Delete(d);
}

/* node: "[when generated job is in waiting state] should upsert scheduler by removing waiting job" */
Test(parity_scheduler_upsert, replaces_waiting_job) {
    ph *h = ph_new("q");
    UPSERT(h, "test", pattern("10 * * * * *"));
    promote_delayed(h);
    cr_assert_eq(ph_count(h, "waiting"), 1);
    UPSERT(h, "test", pattern("2 10 * * * *"));
    cr_assert_eq(ph_count(h, "waiting"), 0);
    cr_assert_eq(ph_count(h, "delayed"), 1);
    ph_end(h);
}

/* node: "[when generated job is in paused state] should upsert scheduler by removing paused job" */
Test(parity_scheduler_upsert, replaces_paused_job) {
    ph *h = ph_new("q");
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_pause(h->q, &err), 0, "%s", err.message);
    UPSERT(h, "test", pattern("10 * * * * *"));
    promote_delayed(h);
    cr_assert_eq(ph_count(h, "waiting"), 1);
    UPSERT(h, "test", pattern("2 10 * * * *"));
    /* as in Node: the promoted job stays, the new iteration is delayed */
    cr_assert_eq(ph_count(h, "waiting"), 1);
    cr_assert_eq(ph_count(h, "delayed"), 1);
    ph_end(h);
}

/* node: "[when generated job is in prioritized state] should upsert scheduler by removing prioritized job" */
Test(parity_scheduler_upsert, replaces_prioritized_job) {
    ph *h = ph_new("q");
    bullc_free(upsert(h, "test", pattern("10 * * * * *"), NULL, NULL, "{\"priority\":1}"));
    promote_delayed(h);
    cr_assert_eq(ph_count(h, "prioritized"), 1);
    UPSERT(h, "test", pattern("2 10 * * * *"));
    cr_assert_eq(ph_count(h, "prioritized"), 0);
    cr_assert_eq(ph_count(h, "delayed"), 1);
    ph_end(h);
}

/* node: "[when 2 jobs with the same options are added] creates only one job" */
Test(parity_scheduler_upsert, same_options_twice) {
    ph *h = ph_new("q");
    char *a = upsert(h, "test", pattern("0 1 * * *"), NULL, NULL, NULL);
    char *b = upsert(h, "test", pattern("0 1 * * *"), NULL, NULL, NULL);
    cr_assert_str_eq(a, b);
    cr_assert_eq(nschedulers(h), 1);
    const char *st[] = {"waiting", "paused", "delayed", "prioritized", "waiting-children"};
    int64_t n[5];
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_count_jobs(h->q, st, 5, n, &err), 0, "%s", err.message);
    cr_assert_eq(n[0] + n[1] + n[2] + n[3] + n[4], 1, "queue.count()");
    bullc_free(a);
    bullc_free(b);
    ph_end(h);
}

/* node: "[when every option is provided] should keep only one waiting job if adding a new repeatable job with the same id" */
Test(parity_scheduler_upsert, every_changed_keeps_one_waiting) {
    ph *h = ph_new("q");
    UPSERT(h, "mykey", every(10000));
    cr_assert_eq(nschedulers(h), 1);
    cr_assert_eq(ph_count(h, "waiting"), 1);
    UPSERT(h, "mykey", every(35160));
    cr_assert_eq(nschedulers(h), 1);
    cr_assert_eq(ph_count(h, "waiting"), 1);
    ph_end(h);
}

/* node: "[when pattern option is provided] should keep only one delayed job if adding a new repeatable job with the same id" */
Test(parity_scheduler_upsert, template_replaced_on_delayed_job) {
    ph *h = ph_new("q");
    bullc_free(upsert(h, "mykey", pattern("0 * 1 * *"), "test1", "{\"foo\":\"bar\"}", "{\"priority\":1}"));
    cr_assert_eq(nschedulers(h), 1);
    cr_assert_eq(ph_count(h, "delayed"), 1);
    bullc_free(upsert(h, "mykey", pattern("0 * 1 * *"), "test2", "{\"foo\":\"baz\"}", "{\"priority\":2}"));
    cr_assert_eq(nschedulers(h), 1);
    cJSON *d = ph_jobs(h, "delayed", 0, -1, true);
    cr_assert_eq(cJSON_GetArraySize(d), 1);
    cJSON *job = cJSON_GetArrayItem(d, 0);
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(job, "name")->valuestring, "test2");
    ph_assert_json(job, "data", "{\"foo\":\"baz\"}");
    cr_assert_eq(ph_jnum(cJSON_GetObjectItemCaseSensitive(job, "opts"), "priority"), 2);
    cJSON_Delete(d);
    ph_end(h);
}

/* The only delayed job, and the fire time its pattern gives after its timestamp. */
static cJSON *delayed_job_of(ph *h, const char *pat, int64_t *fire) {
    cJSON *d = ph_jobs(h, "delayed", 0, -1, true);
    cr_assert_eq(cJSON_GetArraySize(d), 1);
    cJSON *job = cJSON_DetachItemFromArray(d, 0);
    cJSON_Delete(d);
    bullc_error err = {0};
    cr_assert_eq(bullc_cron_next(pat, NULL, (int64_t)ph_jnum(job, "timestamp"), fire, &err), 0, "%s", err.message);
    return job;
}

/* node: "[when pattern option is provided] should update delayed job timestamp when upserting with different pattern" */
Test(parity_scheduler_upsert, pattern_changed_moves_delayed_job) {
    ph *h = ph_new("q");
    bullc_free(upsert(h, "mykey", pattern("10 * * * * *"), "test1", "{\"foo\":\"bar\"}", NULL));
    int64_t fire1, fire2;
    cJSON *job = delayed_job_of(h, "10 * * * * *", &fire1);
    double delay1 = ph_jnum(job, "delay");
    cr_assert_eq(ph_jnum(job, "timestamp") + delay1, (double)fire1, "the delay reaches second 10");
    cJSON_Delete(job);
    bullc_free(upsert(h, "mykey", pattern("30 * * * * *"), "test2", "{\"foo\":\"baz\"}", NULL));
    job = delayed_job_of(h, "30 * * * * *", &fire2);
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(job, "name")->valuestring, "test2");
    ph_assert_json(job, "data", "{\"foo\":\"baz\"}");
    double delay2 = ph_jnum(job, "delay");
    cr_assert_neq(delay2, delay1);
    cr_assert_eq(ph_jnum(job, "timestamp") + delay2, (double)fire2, "the delay reaches second 30");
    cJSON_Delete(job);
    cJSON *l = schedulers(h);
    cr_assert_eq(cJSON_GetArraySize(l), 1);
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(l, 0), "pattern")->valuestring,
                     "30 * * * * *");
    cJSON_Delete(l);
    ph_end(h);
}

/* node: "should allow adding a repeatable job after removing it" */
Test(parity_scheduler_upsert, add_after_remove) {
    ph *h = ph_new("q");
    ph_qe(h);
    bullc_free(upsert(h, "myTestJob", pattern("*/5 * * * *"), NULL, "{\"data\":\"2\"}", NULL));
    cJSON *d = ph_jobs(h, "delayed", 0, -1, true);
    cr_assert_eq(cJSON_GetArraySize(d), 1);
    char *id = strdup(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(d, 0), "id")->valuestring);
    cJSON_Delete(d);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_remove_job_scheduler(h->q, "myTestJob", &err), 0, "%s", err.message);
    cr_assert(PH_WAIT(h, 5000, ph_qe_count(h, "removed", NULL) == 1), "no removed event");
    cJSON *ev = ph_qe_get(h, "removed", 0);
    cr_assert_str_eq(ph_qe_field(ev, "jobId"), id);
    cr_assert_str_eq(ph_qe_field(ev, "prev"), "delayed");
    cr_assert_eq(ph_count(h, "delayed"), 0);
    bullc_free(upsert(h, "myTestJob", pattern("*/5 * * * *"), NULL, "{\"data\":\"2\"}", NULL));
    cr_assert_eq(ph_count(h, "delayed"), 1);
    free(id);
    ph_end(h);
}

/* node: "should not allow to remove a delayed job if it belongs to a repeatable job" */
Test(parity_scheduler_upsert, its_job_cannot_be_removed) {
    ph *h = ph_new("q");
    UPSERT(h, "myTestJob", every(1000));
    cJSON *wj = ph_jobs(h, "waiting", 0, -1, true);
    cr_assert_eq(cJSON_GetArraySize(wj), 1);
    const char *id = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(wj, 0), "id")->valuestring;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_remove_job(h->q, id, true, &err), BULLC_ESTATE);
    char want[200];
    /* Node's Redis backend names the command removeJob (its test matches the start) */
    snprintf(want, sizeof want, "Job %s belongs to a job scheduler and cannot be removed directly. removeJob", id);
    cr_assert_str_eq(err.message, want);
    cr_assert(ph_job_exists(h, id));
    cJSON_Delete(wj);
    ph_end(h);
}

/* node: "should not remove delayed jobs if they belong to a repeatable job when using drain" */
Test(parity_scheduler_upsert, drain_keeps_its_job) {
    ph *h = ph_new("q");
    UPSERT(h, "myTestJob", every(5000));
    ph_add(h, "test", "{\"foo\":\"bar\"}", "{\"delay\":1000}");
    cr_assert_eq(ph_count(h, "delayed"), 1);
    cr_assert_eq(ph_count(h, "waiting"), 1);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_drain(h->q, true, &err), 0, "%s", err.message);
    cr_assert_eq(ph_count(h, "delayed"), 0);
    cJSON *wj = ph_jobs(h, "waiting", 0, -1, true);
    cr_assert_eq(cJSON_GetArraySize(wj), 1);
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(wj, 0), "name")->valuestring, "myTestJob");
    cJSON_Delete(wj);
    ph_end(h);
}

/* node: "should not remove delayed jobs if they belong to a repeatable job when using clean" */
Test(parity_scheduler_upsert, clean_keeps_its_job) {
    ph *h = ph_new("q");
    UPSERT(h, "myTestJob", every(5000));
    ph_add(h, "test", "{\"foo\":\"bar\"}", "{\"delay\":1000}");
    cr_assert_eq(ph_count(h, "delayed"), 1);
    cr_assert_eq(ph_count(h, "waiting"), 1);
    char *out = NULL;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_clean(h->q, 0, 100, "wait", &out, &err), 0, "%s", err.message);
    bullc_free(out);
    cJSON *wj = ph_jobs(h, "waiting", 0, -1, true);
    cr_assert_eq(cJSON_GetArraySize(wj), 1);
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(wj, 0), "name")->valuestring, "myTestJob");
    cJSON_Delete(wj);
    ph_end(h);
}

/* node: "should keep one delayed job if updating a repeatable job's every option" */
Test(parity_scheduler_upsert, every_updated_back_and_forth) {
    ph *h = ph_new("q");
    UPSERT(h, "myTestScheduler", every(5000));
    UPSERT(h, "myTestScheduler", every(4000));
    UPSERT(h, "myTestScheduler", every(5000));
    cr_assert_eq(ph_count(h, "waiting"), 1);
    cr_assert_eq(ph_count(h, "delayed"), 0);
    ph_end(h);
}
