/* SPDX-License-Identifier: MIT */
/* Node BullMQ's "auto job removal" cases (worker.test.ts, worker.redis.test.ts):
 * removeOnComplete / removeOnFail as true, a count, {age}, {age, count},
 * {age, limit}, from the job, the queue's default job options or the worker.
 *
 * Node runs the age cases on a fake clock that advances 1 s per finished job.
 * bullc cannot be given a fake clock, so here jobs finish about 150 ms apart
 * in real time with an age of 1 or 1.5 s, and the jobs expected to survive are
 * derived from the finishedOn each job got (BullMQ's rule: at each finish,
 * jobs finished at or before finishedOn - age are removed, at most `limit`
 * of them, then all but the newest `count`). The test then checks that exactly
 * those jobs (and their logs) are left, and that the age cut removed some and
 * kept some. */
#include "test_parity_util.h"

#include <math.h>
#include <unistd.h>

TestSuite(parity_removal, .timeout = 60);

#define NJOBS 15

typedef struct removal {
    bool fail;
    int64_t spacing;
    double finished_on[NJOBS]; /* by data value */
    char ids[NJOBS][64];
} removal;
static removal R;

static void log_then_finish(ph *h, bullc_job *job, int widx) {
    (void)widx;
    cr_assert_eq(bullc_job_log(job, "test log", NULL, NULL), 0);
    if (R.fail)
        ph_fail_in(h, job, R.spacing, "job failed", 0);
    else
        ph_complete_in(h, job, R.spacing, NULL);
}
static void note_finished_on(ph *h, ph_wev *e) {
    int i = atoi(e->data);
    cJSON *j = ph_job(h, e->id); /* gone at once with {count: 0} */
    R.finished_on[i] = j ? ph_jnum(j, "finishedOn") : NAN;
    cJSON_Delete(j);
}

/* The jobs BullMQ keeps, from the finish times: returns how many, and marks them in keep[]. */
static int expected_kept(double age_s, int count, int limit, bool keep[NJOBS]) {
    bool in_set[NJOBS] = {0};
    if (age_s < 0 && count == 0) { /* {count: 0}: removed as it finishes */
        memset(keep, 0, NJOBS * sizeof keep[0]);
        return 0;
    }
    for (int k = 0; k < NJOBS; k++) {
        cr_assert(!isnan(R.finished_on[k]), "job %d gone at its own finish", k);
        in_set[k] = true;
        double t = R.finished_on[k];
        if (age_s >= 0) {
            double start = t - age_s * 1000;
            int picked = 0;
            /* newest first among those at or before start, up to limit */
            for (int j = k; j >= 0 && (limit <= 0 || picked < limit); j--)
                if (in_set[j] && R.finished_on[j] <= start) in_set[j] = false, picked++;
            if (limit <= 0 || picked < limit)
                for (int j = 0; j <= k; j++)
                    if (R.finished_on[j] <= start) in_set[j] = false;
        }
        if (count > 0) {
            int n = 0;
            for (int j = k; j >= 0; j--)
                if (in_set[j] && ++n > count) in_set[j] = false;
        }
    }
    int n = 0;
    for (int k = 0; k < NJOBS; k++) n += (keep[k] = in_set[k]);
    return n;
}

/* Runs 15 jobs (data 0..14) with the job options / worker option given,
 * one at a time and `spacing` ms apart, then checks what is left. */
/* `worker_keep`: NULL, or the worker's KeepJobs {count, age, limit} (each < 0: unset). */
static void removal_case(const char *job_opts, const int64_t *worker_keep, bool fail, double age_s, int count,
                         int limit, int exact) {
    ph *h = ph_new("q");
    memset(&R, 0, sizeof R);
    R.fail = fail;
    R.spacing = 150;
    h->proc = log_then_finish;
    if (fail)
        h->on_failed = note_finished_on;
    else
        h->on_completed = note_finished_on;
    bullc_worker_opts *o = ph_wopts(h);
    if (worker_keep && fail)
        bullc_worker_opts_set_keep_on_fail(o, worker_keep[0], worker_keep[1], worker_keep[2]);
    else if (worker_keep)
        bullc_worker_opts_set_keep_on_complete(o, worker_keep[0], worker_keep[1], worker_keep[2]);
    ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    for (int i = 0; i < NJOBS; i++) {
        char d[8];
        snprintf(d, sizeof d, "%d", i);
        snprintf(R.ids[i], sizeof R.ids[i], "%s", ph_add(h, "test", d, job_opts));
    }
    cr_assert(PH_WAIT(h, 20000, (fail ? h->n_failed : h->n_completed) == NJOBS));
    bool keep[NJOBS];
    int want = expected_kept(age_s, count, limit, keep);
    if (exact >= 0)
        cr_assert_eq(want, exact, "finish times make %d kept (spacing too irregular?)", want);
    else
        cr_assert(want > 0 && want < NJOBS, "the age cut must keep some jobs and remove others (%d kept)", want);
    cr_assert_eq(ph_count(h, fail ? "failed" : "completed"), want);
    for (int i = 0; i < NJOBS; i++) {
        bool exists = ph_job_exists(h, R.ids[i]);
        int logs = ph_log_count(h, R.ids[i]);
        if (keep[i]) {
            cr_assert(exists, "job %d must be kept", i);
            cr_assert_gt(logs, 0, "job %d keeps its logs", i);
        } else {
            cr_assert_not(exists, "job %d must be removed", i);
            cr_assert_eq(logs, 0, "job %d's logs are removed with it", i);
        }
    }
    ph_end(h);
}

/* node: "should keep of jobs newer than specified after completed with removeOnComplete" */
Test(parity_removal, job_age) { removal_case("{\"removeOnComplete\":{\"age\":1}}", NULL, false, 1, 0, 0, -1); }

/* node: "should keep of jobs newer than specified and up to a count completed with removeOnComplete" */
Test(parity_removal, job_age_and_count) {
    removal_case("{\"removeOnComplete\":{\"age\":1,\"count\":5}}", NULL, false, 1, 5, 0, 5);
}

/* node: "should keep of jobs newer than specified and up to a count fail with removeOnFail" */
Test(parity_removal, job_age_and_count_failed) {
    removal_case("{\"removeOnFail\":{\"age\":1,\"count\":5}}", NULL, true, 1, 5, 0, 5);
}

/* node: "[when worker has removeOnFinish options] should keep of jobs newer than specified after completed with removeOnComplete" */
Test(parity_removal, worker_age) { removal_case(NULL, (const int64_t[]){-1, 1, -1}, false, 1, 0, 0, -1); }

/* node: "[when worker has removeOnFinish options] should keep of jobs newer than specified and up to a count completed with removeOnComplete" */
Test(parity_removal, worker_age_and_count) { removal_case(NULL, (const int64_t[]){5, 1, -1}, false, 1, 5, 0, 5); }

/* node: "[when worker has removeOnFinish options] should keep jobs with age 10 and limit 2 with removeOnComplete" */
Test(parity_removal, worker_age_and_limit) { removal_case(NULL, (const int64_t[]){-1, 1, 2}, false, 1, 0, 2, -1); }

/* node: "[when worker has removeOnFinish options] should keep of jobs newer than specified and up to a count fail with removeOnFail" */
Test(parity_removal, worker_age_and_count_failed) { removal_case(NULL, (const int64_t[]){5, 1, -1}, true, 1, 5, 0, 5); }

/* node: "[when worker has removeOnFinish options] should remove all jobs when count is 0 with removeOnFail" */
Test(parity_removal, worker_count_zero_failed) { removal_case(NULL, (const int64_t[]){0, -1, -1}, true, -1, 0, 0, 0); }

/* ---- default job options ------------------------------------------------------ */

static void complete_foo(ph *h, bullc_job *job, int widx) {
    (void)widx;
    cr_assert_str_eq(bullc_job_data(job), "{\"foo\":\"bar\"}");
    ph_complete(h, job, NULL);
}
static void fail_foo(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_fail(h, job, "error", 0);
}

/* node: "should remove a job after completed if the default job options specify removeOnComplete" */
Test(parity_removal, default_remove_on_complete) {
    ph *h = ph_new("q");
    bullc_queue *nq = ph_queue_with_defaults(h, "{\"removeOnComplete\":true}");
    h->proc = complete_foo;
    ph_worker(h, NULL);
    const char *id;
    ph_add_to(h, nq, "test", "{\"foo\":\"bar\"}", NULL, &id);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 1));
    cr_assert_not(ph_job_exists(h, id));
    cr_assert_eq(ph_count(h, "completed"), 0);
    bullc_queue_free(nq);
    ph_end(h);
}

/* node: "should remove a job after fail if the default job options specify removeOnFail" */
Test(parity_removal, default_remove_on_fail) {
    ph *h = ph_new("q");
    h->proc = fail_foo;
    ph_worker(h, NULL);
    bullc_queue *nq = ph_queue_with_defaults(h, "{\"removeOnFail\":true}");
    const char *id;
    ph_add_to(h, nq, "test", "{\"foo\":\"bar\"}", NULL, &id);
    cr_assert(PH_WAIT(h, 10000, h->n_failed == 1));
    cr_assert_not(ph_job_exists(h, id));
    cr_assert_eq(ph_count(h, "failed"), 0);
    cr_assert_eq(ph_count(h, "completed"), 0);
    bullc_queue_free(nq);
    ph_end(h);
}

static void log_and_complete(ph *h, bullc_job *job, int widx) {
    (void)widx;
    bullc_job_log(job, "test log", NULL, NULL);
    ph_complete(h, job, NULL);
}

/* Nine jobs through a queue with default job options `defaults`; the last 3 stay. */
static void keep_3_by_default(const char *defaults, bool fail) {
    ph *h = ph_new("q");
    h->proc = fail ? fail_foo : log_and_complete;
    ph_worker(h, NULL);
    bullc_queue *nq = ph_queue_with_defaults(h, defaults);
    const char *ids[9];
    for (int i = 0; i < 9; i++) {
        char d[8];
        snprintf(d, sizeof d, "%d", i);
        ph_add_to(h, nq, "test", d, NULL, &ids[i]);
    }
    cr_assert(PH_WAIT(h, 10000, (fail ? h->n_failed : h->n_completed) == 9));
    cr_assert_eq(ph_count(h, fail ? "failed" : "completed"), 3);
    for (int i = 0; i < 9; i++) cr_assert_eq(ph_job_exists(h, ids[i]), i >= 6, "job %d", i);
    bullc_queue_free(nq);
    ph_end(h);
}

/* node: "should keep specified number of jobs after completed with default job options removeOnComplete" */
Test(parity_removal, default_keep_3_completed) { keep_3_by_default("{\"removeOnComplete\":3}", false); }

/* node: "should keep specified number of jobs after completed with global removeOnFail" */
Test(parity_removal, default_keep_3_failed) { keep_3_by_default("{\"removeOnFail\":3}", true); }

/* ---- limit below the removable jobs (worker.redis.test.ts) ------------------------- */

static void noop(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete(h, job, NULL);
}

/* node: "should not leave orphaned job data when limit is less than removable jobs" */
Test(parity_removal, no_orphans_when_limit_is_below_the_removable_jobs) {
    ph *h = ph_new("q");
    h->proc = noop;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_keep_on_complete(o, -1, 1, -1);
    ph_worker(h, o);
    const char *ids[10];
    for (int i = 0; i < 10; i++) {
        char d[32];
        snprintf(d, sizeof d, "{\"phase\":1,\"i\":%d}", i);
        ids[i] = ph_add(h, "test", d, NULL);
    }
    cr_assert(PH_WAIT(h, 10000, ph_count(h, "completed") >= 10));
    PH_RUN_FOR(h, 1500);
    const char *trigger = ph_add(h, "test", "{\"phase\":2,\"trigger\":true}", NULL);
    cr_assert(PH_WAIT(h, 10000, !isnan(ph_job_num(h, trigger, "finishedOn"))));
    PH_RUN_FOR(h, 200);
    int hashes = 0, in_set = 0;
    for (int i = 0; i < 10; i++) {
        hashes += (int)ph_icmd("EXISTS %s", ph_key(h, ids[i]));
        redisReply *r = ph_cmd("ZSCORE %s %s", ph_key(h, "completed"), ids[i]);
        in_set += r->type != REDIS_REPLY_NIL;
        freeReplyObject(r);
    }
    cr_assert_eq(hashes, in_set, "every job hash left is still listed in completed (%d hashes, %d listed)", hashes,
                 in_set);
    cr_assert_leq(hashes, 8, "the trigger's finish removed at least 2 (its limit)");
    ph_end(h);
}
