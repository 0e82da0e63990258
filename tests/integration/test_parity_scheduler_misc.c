/* SPDX-License-Identifier: MIT */
/* Node BullMQ's job_scheduler.test.ts cases on upserts refused or made while
 * a scheduler's job is in process: the removed debounce option, an id of six
 * colon segments taken as a scheduler, a scheduler removed and upserted by
 * its own job's processor (Node's collision error), removed and upserted
 * again and again while a worker runs it, and an upsert over an active
 * iteration. They run on the real clock: where Node freezes it, a case
 * starts early enough in its slot not to cross into the next one. */
#include "test_sched_util.h"

TestSuite(parity_scheduler_misc, .timeout = 60);

/* node: "[Job Scheduler > when removed debounce option is provided] throws an error" */
Test(parity_scheduler_misc, removed_debounce_refused) {
    ph *h = ph_new("q");
    bullc_job_opts *jo = NULL;
    bullc_error err = {0};
    cr_assert_eq(bullc_job_opts_new(&jo), 0);
    int rc = bullc_job_opts_merge_json(jo, "{\"debounce\":{\"id\":\"legacy\"}}", &err);
    char *job = NULL;
    if (rc >= 0) rc = bullc_queue_upsert_job_scheduler(h->q, "test-scheduler", every(100), NULL, NULL, jo, &job, &err);
    cr_assert_eq(rc, BULLC_EINVAL);
    cr_assert(strstr(err.message, "Debounce option has been removed. Use deduplication option instead"), "%s",
              err.message);
    cr_assert_null(job);
    cr_assert_eq(nschedulers(h), 0, "nothing written");
    bullc_job_opts_free(jo);
    ph_end(h);
}

/* node: "[when job scheduler id contains 5 or more colon segments] should classify a real scheduler id with 5+ segments via isJobScheduler" */
Test(parity_scheduler_misc, six_segment_id_is_a_scheduler) {
    ph *h = ph_new("q");
    const char *id = "tenant:region:env:service:queue:task";
    UPSERT(h, id, every(60000));
    char *json = NULL;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_get_job_scheduler(h->q, id, &json, &err), 0, "%s", err.message);
    cJSON *s = cJSON_Parse(json);
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(s, "key")->valuestring, id);
    cr_assert_eq(num_field(s, "every"), 60000);
    cJSON_Delete(s);
    bullc_free(json);
    cr_assert_eq(nschedulers(h), 1);
    ph_end(h);
}

/* The processor of the collision case: its job removes its scheduler and
 * upserts it again in the same 10 s slot. */
static char collision[256];
static void remove_and_upsert(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (strstr(bullc_job_data(job), "\"bar\"")) {
        cr_assert_eq(bullc_queue_remove_job_scheduler(h->q, "test", NULL), 0);
        bullc_error err = {0};
        char *id = NULL;
        int rc = bullc_queue_upsert_job_scheduler(h->q, "test", pattern("*/10 * * * * *"), NULL, "{\"foo\":\"baz\"}",
                                                  NULL, &id, &err);
        snprintf(collision, sizeof collision, "%d %s", rc, rc ? err.message : "");
        bullc_free(id);
    }
    ph_complete(h, job, NULL);
}

/* Waits until the current 10 s slot is in its first half. */
static void early_in_ten_seconds(void) {
    while (now_ms() % 10000 >= 5000) uv_sleep(20);
}

/* node: "[when job scheduler is removed and upserted] throws error and does not add job scheduler" */
Test(parity_scheduler_misc, removed_and_upserted_by_its_job_collides) {
    ph *h = ph_new("q");
    collision[0] = '\0';
    h->proc = remove_and_upsert;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_autorun(o, false);
    bullc_worker *w = ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    early_in_ten_seconds();
    char *id = upsert(h, "test", pattern("*/10 * * * * *"), NULL, "{\"foo\":\"bar\"}", NULL);
    cr_assert_eq(bullc_queue_promote_job(h->q, id, NULL), 0);
    cr_assert_eq(bullc_worker_run(w), 0);
    cr_assert(PH_WAIT(h, 5000, collision[0]), "the processor ran");
    char want[160];
    snprintf(want, sizeof want, "%d Cannot create job scheduler iteration - job ID already exists. addJobScheduler",
             BULLC_ESTATE);
    cr_assert_str_eq(collision, want);
    cr_assert(PH_WAIT(h, 5000, h->n_completed == 1));
    cr_assert_eq(nschedulers(h), 0);
    cr_assert_eq(ph_count(h, "delayed"), 0);
    bullc_free(id);
    ph_end(h);
}

static void remove_and_upsert_foo(ph *h, bullc_job *job, int widx) {
    (void)widx;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_remove_job_scheduler(h->q, "foo", &err), 0, "%s", err.message);
    char *id = NULL;
    cr_assert_geq(
        bullc_queue_upsert_job_scheduler(h->q, "foo", every(500), "bruh", "{\"something\":\"else\"}", NULL, &id, &err),
        0, "%s", err.message);
    bullc_free(id);
    ph_complete(h, job, NULL);
}

/* node: "[when deleting and upserting a job scheduler] should not throw error while processing jobs" */
Test(parity_scheduler_misc, deleted_and_upserted_while_processing) {
    ph *h = ph_new("q");
    ph_qe(h);
    h->proc = remove_and_upsert_foo;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_autorun(o, false);
    bullc_worker_opts_set_concurrency(o, 2);
    bullc_worker_opts_set_lock_duration(o, 60000);
    bullc_worker *w = ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1 && h->qe_ready));
    bullc_free(upsert(h, "foo", every(500), "bruh", "{\"hello\":\"world\"}", NULL));
    cr_assert_eq(bullc_worker_run(w), 0);
    /* as Node's listener: 100 ms after each completed event, upsert again */
    for (int seen = 0; seen < 7; seen++) {
        cr_assert(PH_WAIT(h, 10000, ph_qe_count(h, "completed", NULL) > seen), "completion %d", seen + 1);
        PH_RUN_FOR(h, 100);
        bullc_free(upsert(h, "foo", every(500), "bruh", "{\"something\":\"else\"}", NULL));
    }
    cr_assert_eq(h->n_errors, 0, "no worker error");
    cr_assert_eq(h->n_failed, 0);
    cr_assert_eq(nschedulers(h), 1);
    ph_end(h);
}

/* node: "[when job schedulers are upserted in quick succession > when next delayed job already exists and it is not in waiting or delayed states] updates the scheduler with the new settings" */
Test(parity_scheduler_misc, upsert_over_an_active_iteration) {
    ph *h = ph_new("q");
    bullc_worker *w;
    bullc_job *job;
    int64_t first = every_minute_first_taken(h, &w, &job);
    int64_t t0 = now_ms();
    UPSERT(h, "test", every(2 * 60000));
    int64_t t1 = now_ms();
    /* Node's frozen now + 2 minutes is the upsert's own now there: the
     * iteration in process is replaced by one due at the upsert */
    assert_the_test_scheduler(h, 120000, first % 60000, 2, t0, t1);
    cr_assert_eq(ph_count(h, "delayed") + ph_count(h, "waiting"), 1);
    complete(h, job);
    ph_end(h);
}

static bullc_job *held[8];
static int nheld;
static void hold(ph *h, bullc_job *job, int widx) {
    (void)h, (void)widx;
    cr_assert_lt(nheld, 8);
    held[nheld++] = job;
}

/* Node provokes the stalls by making the worker's scheduling call fail (a
 * stub) while its delay is stubbed; here the worker renews no lock and
 * never finishes the job, so the same outcome comes from the stalled checker
 * alone: a scheduler's job is taken back to wait however often it stalls. */
/* node: "[when job scheduler update fails in worker] should allow repeatable jobs to be retried infinitely when stalled" */
Test(parity_scheduler_misc, stalled_scheduler_job_never_fails) {
    ph *h = ph_new("q");
    nheld = 0;
    h->proc = hold;
    char *id = upsert(h, "infinite-retry-scheduler", every(600000), "scheduler-job", "{\"test\":true}", NULL);
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_max_stalled_count(o, 2);
    bullc_worker_opts_set_lock_duration(o, 1000);
    bullc_worker_opts_set_stalled_interval(o, 100);
    bullc_worker_opts_set_skip_lock_renewal(o, true);
    bullc_worker_opts_set_concurrency(o, 8);
    ph_worker(h, o);
    cr_assert(PH_WAIT(h, 20000, h->n_stalled >= 3), "%d stalled", h->n_stalled);
    for (int i = 0; i < h->nwev; i++)
        if (h->wev[i].kind == 's') cr_assert_str_eq(h->wev[i].id, id);
    cr_assert_neq(strcmp(ph_state(h, id), "failed"), 0, "a scheduler's job is not failed past maxStalledCount");
    cr_assert_eq(h->n_failed, 0);
    ph_close_worker_async(h, 0, true);
    for (int i = 0; i < nheld; i++) ph_complete(h, held[i], NULL);
    cr_assert(PH_WAIT(h, 5000, h->wdone[0]));
    bullc_free(id);
    ph_end(h);
}

/* ---- "repeat every 2 seconds", on the real clock ------------------------------------ */

static void complete_now(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete(h, job, NULL);
}

/* The slot an iteration was made for: its id is "repeat:<key>:<ms>". */
static int64_t slot_of(const char *id) { return strtoll(strrchr(id, ':') + 1, NULL, 10); }

/* A worker runs the scheduler's first five iterations: each is made for an
 * even second, 2 s after the one before, the first for `first_due`; their
 * timestamps grow (Node: by at least 2 s on its frozen clock, where an
 * iteration is made at its slot; here it is made when the one before is
 * taken, which the real clock delays by a few ms). */
static void runs_every_2s(ph *h, int64_t first_due) {
    h->proc = complete_now;
    ph_worker(h, ph_wopts(h));
    cr_assert(PH_WAIT(h, 20000, h->n_completed >= 5), "%d completed", h->n_completed);
    int64_t prev_due = 0, prev_ts = 0;
    int k = 0;
    for (int i = 0; i < h->nwev && k < 5; i++) {
        if (h->wev[i].kind != 'c') continue;
        cJSON *j = ph_job(h, h->wev[i].id);
        int64_t ts = (int64_t)ph_jnum(j, "timestamp"), due = slot_of(h->wev[i].id);
        cJSON_Delete(j);
        cr_assert_eq(due % 2000, 0, "iteration %d due at %lld", k, (long long)due);
        if (k == 0) cr_assert_eq(due, first_due, "the first iteration");
        if (k > 0) {
            cr_assert_eq(due - prev_due, 2000, "iteration %d, 2 s after the one before", k);
            cr_assert_lt(prev_ts, ts);
        }
        prev_due = due, prev_ts = ts;
        k++;
    }
    cr_assert_eq(k, 5);
}

static bullc_scheduler_opts *every_2s_from(int64_t start_date) {
    bullc_scheduler_opts *o = pattern("*/2 * * * * *");
    if (start_date) cr_assert_eq(bullc_scheduler_opts_set_start_date(o, start_date), 0);
    return o;
}

/* node: "[Job Scheduler] should repeat every 2 seconds" */
Test(parity_scheduler_misc, repeats_every_2_seconds) {
    ph *h = ph_new("q");
    int64_t t0 = now_ms();
    bullc_free(upsert(h, "test", every_2s_from(0), NULL, "{\"foo\":\"bar\"}", NULL));
    char *json = NULL;
    cr_assert_eq(bullc_queue_get_job_scheduler(h->q, "test", &json, NULL), 0);
    cJSON *s = cJSON_Parse(json);
    bullc_free(json);
    cr_assert_eq(num_field(s, "iterationCount"), 1);
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(s, "pattern")->valuestring, "*/2 * * * * *");
    cr_assert_eq(num_field(s, "offset"), 0);
    ph_assert_json(s, "template", "{\"data\":{\"foo\":\"bar\"}}");
    /* Node's next: the first even second after its frozen now */
    int64_t next = num_field(s, "next");
    cr_assert(next % 2000 == 0 && next > t0 && next <= t0 + 2000, "next %lld after %lld", (long long)next,
              (long long)t0);
    cJSON_Delete(s);
    runs_every_2s(h, next);
    ph_end(h);
}

/* node: "[Job Scheduler] should repeat every 2 seconds with startDate in future" */
Test(parity_scheduler_misc, repeats_every_2_seconds_from_a_future_start) {
    ph *h = ph_new("q");
    /* Node: 9:24:00, startDate 9:24:05, first iteration 9:24:06 (delay 6 s) */
    int64_t base = now_ms() / 2000 * 2000;
    char *id = upsert(h, "test", every_2s_from(base + 5000), NULL, "{\"foo\":\"bar\"}", NULL);
    cJSON *j = ph_job(h, id);
    int64_t due = (int64_t)ph_jnum(j, "timestamp") + (int64_t)ph_jnum(j, "delay");
    cJSON_Delete(j);
    cr_assert_eq(due, base + 6000, "the first even second after the start date");
    cr_assert_eq(slot_of(id), base + 6000);
    bullc_free(id);
    runs_every_2s(h, base + 6000);
    ph_end(h);
}

/* node: "[Job Scheduler] should repeat every 2 seconds with startDate in past" */
Test(parity_scheduler_misc, repeats_every_2_seconds_from_a_past_start) {
    ph *h = ph_new("q");
    int64_t t0 = now_ms();
    char *id = upsert(h, "repeat", every_2s_from(t0 - 120000), NULL, "{\"foo\":\"bar\"}", NULL);
    int64_t due = slot_of(id);
    cr_assert(due % 2000 == 0 && due > t0 && due <= t0 + 2000, "a past start date changes nothing: %lld",
              (long long)due);
    bullc_free(id);
    runs_every_2s(h, due);
    ph_end(h);
}
