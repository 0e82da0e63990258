/* SPDX-License-Identifier: MIT */
/* Node BullMQ's job_scheduler.redis.test.ts: what the scheduler calls do
 * with the keys themselves: the scheduler's hash on removal, entries of the
 * repeat set without a hash (a BullMQ 5 repeatable job's, refused; any
 * other, dropped), and the scripts' collision answers. */
#include "test_sched_util.h"

TestSuite(parity_scheduler_redis, .timeout = 60);

static void proc_complete(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete(h, job, NULL);
}

static bool key_exists(const char *key) { return ph_icmd("EXISTS %s", key) == 1; }

/* node: "should be able to remove repeatable jobs by key" */
Test(parity_scheduler_redis, remove_by_key) {
    ph *h = ph_new("q");
    char *id = upsert(h, "remove", pattern("*/2 * * * * *"), NULL, NULL, NULL);
    cr_assert_eq(ph_count(h, "delayed"), 1);
    cJSON *job = ph_job(h, id);
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(job, "repeatJobKey")->valuestring, "remove");
    cJSON_Delete(job);
    cr_assert_eq(nschedulers(h), 1);
    cr_assert(key_exists(ph_key(h, "repeat:remove")));
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_remove_job_scheduler(h->q, "remove", &err), 0, "%s", err.message);
    cr_assert_eq(ph_count(h, "delayed"), 0);
    cr_assert_not(key_exists(ph_key(h, "repeat:remove")));
    cr_assert_eq(nschedulers(h), 0);
    bullc_free(id);
    ph_end(h);
}

/* A repeat-set entry without a hash must make getJobSchedulers fail with
 * Node 6's migration error, and stay (it is a v5 queue's repeatable job). */
static void legacy_refused(const char *legacy) {
    ph *h = ph_new("q");
    ph_vcmd("ZADD %s %lld %s", ph_key(h, "repeat"), (long long)(now_ms() + 60000), legacy);
    char *json = (char *)"untouched";
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_get_job_schedulers(h->q, 0, -1, false, &json, &err), BULLC_ESTATE);
    cr_assert(strstr(err.message, "Legacy repeatable job metadata is not supported in BullMQ v6"), "%s", err.message);
    cr_assert(strstr(err.message, "migrate-from-v5-to-v6"), "%s", err.message);
    cr_assert_str_eq(json, "untouched");
    redisReply *r = ph_cmd("ZSCORE %s %s", ph_key(h, "repeat"), legacy);
    cr_assert_eq(r->type, REDIS_REPLY_STRING, "the legacy entry is kept");
    freeReplyObject(r);
    /* getJobScheduler(key) refuses it too */
    cr_assert_eq(bullc_queue_get_job_scheduler(h->q, legacy, &json, &err), BULLC_ESTATE);
    ph_end(h);
}

/* node: "[when listing schedulers without hash data] should raise a migration error for legacy repeatable keys" */
Test(parity_scheduler_redis, legacy_cron_key) { legacy_refused("legacy-name:legacy-id:::*/5 * * * * *"); }

/* node: "[when listing schedulers without hash data] should raise a migration error for legacy every-based keys" */
Test(parity_scheduler_redis, legacy_every_key) { legacy_refused("legacy-name:legacy-id:::1000"); }

static int64_t count(ph *h) {
    int64_t n = -1;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_get_job_schedulers_count(h->q, &n, &err), 0, "%s", err.message);
    return n;
}

static bool in_repeat_set(ph *h, const char *id) {
    redisReply *r = ph_cmd("ZSCORE %s %s", ph_key(h, "repeat"), id);
    bool in = r->type != REDIS_REPLY_NIL;
    freeReplyObject(r);
    return in;
}

/* node: "[when listing schedulers without hash data] should remove dangling scheduler references that are not legacy repeatable keys" */
Test(parity_scheduler_redis, dangling_reference_dropped) {
    ph *h = ph_new("q");
    const char *id = "tenant:region:service:job:non-legacy";
    ph_vcmd("ZADD %s %lld %s", ph_key(h, "repeat"), (long long)(now_ms() + 60000), id);
    cr_assert_eq(count(h), 1);
    cr_assert_eq(nschedulers(h), 0);
    cr_assert_eq(count(h), 0);
    cr_assert_not(in_repeat_set(h, id));
    ph_end(h);
}

/* node: "[when listing schedulers without hash data] should remove dangling references with numeric suffix but non-legacy endDate segment" */
Test(parity_scheduler_redis, dangling_numeric_suffix_dropped) {
    ph *h = ph_new("q");
    const char *id = "tenant:region:service:job:1000";
    ph_vcmd("ZADD %s %lld %s", ph_key(h, "repeat"), (long long)(now_ms() + 60000), id);
    cr_assert_eq(nschedulers(h), 0);
    cr_assert_not(in_repeat_set(h, id));
    ph_end(h);
}

/* node: "[when job scheduler id contains 5 or more colon segments] should NOT misclassify a legacy repeatable key with 5+ segments as a scheduler" */
Test(parity_scheduler_redis, legacy_key_with_a_name_is_no_scheduler) {
    ph *h = ph_new("q");
    const char *legacy = "legacy-name:legacy-id:::*/5 * * * * *";
    ph_vcmd("ZADD %s %lld %s", ph_key(h, "repeat"), (long long)(now_ms() + 60000), legacy);
    char hkey[256];
    snprintf(hkey, sizeof hkey, "%s:%s", ph_key(h, "repeat"), legacy);
    ph_vcmd("HSET %s name legacy-name", hkey);
    /* the hash without `ic` is no scheduler (Node's isJobScheduler): a
     * worker taking a job of that key refuses to schedule from it */
    const char *id = ph_add(h, "legacy-name", "{}", "{\"delay\":60000}");
    ph_vcmd("HSET %s rjk %s", ph_key(h, id), legacy);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_promote_job(h->q, id, &err), 0, "%s", err.message);
    h->proc = proc_complete;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 1), "the job is still processed");
    ph_close_worker(h, 0, false);
    cr_assert_eq(h->n_errors, 1);
    cr_assert(strstr(ph_wget(h, 'e', 0)->text, "Legacy repeatable job metadata is not supported in BullMQ v6"), "%s",
              ph_wget(h, 'e', 0)->text);
    cr_assert_eq(ph_count(h, "delayed") + ph_count(h, "waiting"), 0, "no iteration scheduled");
    cr_assert_eq(ph_icmd("HLEN %s", hkey), 1, "the legacy hash is left as it was");
    cr_assert_eq(ph_icmd("ZCARD %s", ph_key(h, "repeat")), 1);
    ph_end(h);
}

/* node: "[collision detection] should handle collision detection correctly for concurrent scheduler operations" */
Test(parity_scheduler_redis, pattern_collision) {
    ph *h = ph_new("q");
    int64_t t0 = now_ms(), next;
    bullc_error err = {0};
    cr_assert_eq(bullc_cron_next("0 0 * * * *", NULL, t0, &next, &err), 0, "%s", err.message);
    if (next - t0 < 2000) { /* the hour turns: take the next one */
        uv_sleep((unsigned)(next - t0 + 10));
        t0 = now_ms();
        cr_assert_eq(bullc_cron_next("0 0 * * * *", NULL, t0, &next, &err), 0, "%s", err.message);
    }
    char jid[96];
    snprintf(jid, sizeof jid, "repeat:test-collision:%lld", (long long)next);
    ph_vcmd("HSET %s id %s data {}", ph_key(h, jid), jid);
    char *id = (char *)"untouched";
    bullc_scheduler_opts *o = pattern("0 0 * * * *");
    cr_assert_eq(bullc_queue_upsert_job_scheduler(h->q, "test-collision", o, "test-job", NULL, NULL, &id, &err),
                 BULLC_ESTATE);
    bullc_scheduler_opts_free(o);
    cr_assert(strstr(err.message, "job ID already exists"), "%s", err.message);
    cr_assert_null(id);
    cr_assert_eq(count(h), 0, "no scheduler stored");
    ph_end(h);
}

/* node: "[collision detection] should report busy when every-based scheduler collisions exhaust scanned slots" */
Test(parity_scheduler_redis, every_slots_busy) {
    ph *h = ph_new("q");
    /* a start date fixes the first slot (Node's case passes its now to the script) */
    int64_t start = now_ms() + 3600000;
    for (int i = 0; i < 33; i++) {
        char jid[96];
        snprintf(jid, sizeof jid, "repeat:test-every-collision:%lld", (long long)(start + i * 1000));
        ph_vcmd("HSET %s id %s", ph_key(h, jid), jid);
    }
    bullc_scheduler_opts *o = every(1000);
    bullc_scheduler_opts_set_start_date(o, start);
    char *id = NULL;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_upsert_job_scheduler(h->q, "test-every-collision", o, "test-job", NULL, NULL, &id, &err),
                 BULLC_ESTATE);
    bullc_scheduler_opts_free(o);
    cr_assert(strstr(err.message, "current and next time slots already have jobs"), "%s", err.message);
    cr_assert_eq(count(h), 0, "no scheduler stored");
    ph_end(h);
}

/* ---- a scheduler's job found stalled (bullc_worker_check_stalled) ---------------- */

static bullc_job *held;
static void hold(ph *h, bullc_job *job, int widx) {
    (void)h, (void)widx;
    held = job;
}
static void must_not_run(ph *h, bullc_job *job, int widx) {
    (void)widx;
    cr_assert_fail("processor called for job %s", bullc_job_id(job));
    ph_complete(h, job, NULL);
}

static int checks_answered;
static void check_answered(bullc_worker *w, int code, int stalled, void *data) {
    (void)w, (void)stalled, (void)data;
    cr_assert_eq(code, 0);
    checks_answered++;
}

/* Runs the worker's stalled check once, the stalled-check key deleted first
 * so that it runs whenever asked (Node's test calls the script so). */
static void check_stalled_now(ph *h, bullc_worker *w) {
    ph_vcmd("DEL %s", ph_key(h, "stalled-check"));
    int before = checks_answered;
    cr_assert_eq(bullc_worker_check_stalled(w, check_answered, NULL), 0);
    cr_assert_eq(checks_answered, before, "the answer never comes inside the call");
    cr_assert(PH_WAIT(h, 5000, checks_answered == before + 1));
}

/* A worker without lock renewal nor stalled checks of its own (Node's
 * skipLockRenewal / skipStalledCheck), holding the scheduler's first job
 * `id`, whose lock is then deleted. */
static bullc_worker *hold_unlocked(ph *h, const char *id, int max_stalled) {
    held = NULL;
    h->proc = hold;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_skip_lock_renewal(o, true);
    bullc_worker_opts_set_skip_stalled_check(o, true);
    bullc_worker_opts_set_max_stalled_count(o, max_stalled);
    bullc_worker *w = ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, held != NULL));
    cr_assert_str_eq(bullc_job_id(held), id);
    char lock[128];
    snprintf(lock, sizeof lock, "%s:lock", id);
    ph_vcmd("DEL %s", ph_key(h, lock));
    return w;
}

/* Closes worker `idx` (gracefully) and lets its held job end: its completion
 * finds no lock (Node's "Missing lock ... moveToFinished") and stores nothing. */
static void close_holding(ph *h, int idx) {
    ph_close_worker_async(h, idx, false);
    ph_complete(h, held, NULL);
    cr_assert(PH_WAIT(h, 5000, h->wdone[idx]));
}

static void second_worker(ph *h, ph_proc_fn proc, int max_stalled) {
    h->proc = proc;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_skip_lock_renewal(o, true);
    bullc_worker_opts_set_skip_stalled_check(o, true);
    bullc_worker_opts_set_max_stalled_count(o, max_stalled);
    ph_worker(h, o);
}

/* Node freezes its clock at the scheduler's first iteration; an interval
 * far longer than the case keeps the next iteration from coming due here. */
#define FAR_EVERY 600000

/* node: "[when repeatable job fails] should not create a new delayed job if the failed job is stalled and moved back to wait" */
Test(parity_scheduler_redis, stalled_iteration_back_to_wait_adds_no_iteration) {
    ph *h = ph_new("q");
    char *id = upsert(h, "test", every(FAR_EVERY), NULL, NULL, NULL);
    cr_assert_eq(ph_count(h, "waiting"), 1);
    bullc_worker *w = hold_unlocked(h, id, 1);
    cr_assert(PH_WAIT(h, 5000, ph_count(h, "delayed") == 1), "the next iteration is scheduled as the job starts");
    check_stalled_now(h, w);
    check_stalled_now(h, w);
    cr_assert_eq(ph_count(h, "waiting"), 1, "moved back to wait");
    cr_assert_eq(h->n_stalled, 1);
    close_holding(h, 0);
    cr_assert_eq(ph_count(h, "delayed"), 1);
    cr_assert_eq(ph_count(h, "completed"), 0);
    second_worker(h, proc_complete, 1);
    cr_assert(PH_WAIT(h, 5000, h->n_completed == 1));
    cr_assert_eq(ph_count(h, "completed"), 1);
    cr_assert_eq(ph_count(h, "waiting"), 0);
    cr_assert_eq(ph_count(h, "delayed"), 1, "no second next iteration");
    bullc_free(id);
    ph_end(h);
}

/* node: "[when repeatable job fails > when the scheduler has been removed] should fail a stalled scheduler job after maxStalledCount" */
Test(parity_scheduler_redis, stalled_job_of_a_removed_scheduler_fails) {
    ph *h = ph_new("q");
    char *id = upsert(h, "test-scheduler", every(FAR_EVERY), NULL, NULL, NULL);
    cr_assert_eq(ph_count(h, "waiting"), 1);
    bullc_worker *w = hold_unlocked(h, id, 0);
    cr_assert_eq(bullc_queue_remove_job_scheduler(h->q, "test-scheduler", NULL), 0);
    check_stalled_now(h, w);
    check_stalled_now(h, w);
    cr_assert_eq(ph_count(h, "waiting"), 1);
    cJSON *job = ph_job(h, id);
    ph_assert_json(job, "deferredFailure", "\"job stalled more than allowable limit\"");
    cJSON_Delete(job);
    close_holding(h, 0);
    second_worker(h, must_not_run, 0);
    cr_assert(PH_WAIT(h, 5000, h->n_failed == 1));
    const ph_wev *f = NULL;
    for (int i = 0; i < h->nwev; i++)
        if (h->wev[i].kind == 'f') f = &h->wev[i];
    cr_assert_str_eq(f->id, id);
    cr_assert_str_eq(f->text, "job stalled more than allowable limit");
    cr_assert_eq(f->widx, 1);
    bullc_free(id);
    ph_end(h);
}
