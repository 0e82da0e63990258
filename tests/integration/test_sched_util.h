/* SPDX-License-Identifier: MIT */
/* Helpers of the tests that reproduce Node BullMQ's job scheduler tests
 * (tests/integration/test_parity_scheduler*.c): repeat options, an upsert
 * that must succeed, the wall clock the scheduler scripts see. Header only,
 * over test_parity_util.h. */
#ifndef BULLC_TEST_SCHED_UTIL_H
#define BULLC_TEST_SCHED_UTIL_H

#include <time.h>

#include "test_parity_util.h"

/* Wall-clock epoch ms (tu_now_ms is monotonic). */
static PH_UNUSED int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static PH_UNUSED bullc_scheduler_opts *every(int64_t ms) {
    bullc_scheduler_opts *o;
    cr_assert_eq(bullc_scheduler_opts_new(&o), 0);
    cr_assert_eq(bullc_scheduler_opts_set_every(o, ms), 0);
    return o;
}

static PH_UNUSED bullc_scheduler_opts *pattern(const char *p) {
    bullc_scheduler_opts *o;
    cr_assert_eq(bullc_scheduler_opts_new(&o), 0);
    cr_assert_eq(bullc_scheduler_opts_set_pattern(o, p, NULL), 0);
    return o;
}

/* Upserts (taking `o`) and returns the next job's id (bullc_free it). */
static PH_UNUSED char *upsert(ph *h, const char *id, bullc_scheduler_opts *o, const char *name, const char *data,
                              const char *opts_json) {
    bullc_error err = {0};
    bullc_job_opts *jo = NULL;
    if (opts_json) {
        bullc_job_opts_new(&jo);
        cr_assert(bullc_job_opts_merge_json(jo, opts_json, &err) >= 0, "%s", err.message);
    }
    char *job = NULL;
    cr_assert_eq(bullc_queue_upsert_job_scheduler(h->q, id, o, name, data, jo, &job, &err), 0, "%s", err.message);
    bullc_job_opts_free(jo);
    bullc_scheduler_opts_free(o);
    return job;
}
#define UPSERT(h, id, o) bullc_free(upsert(h, id, o, NULL, NULL, NULL))

/* getJobSchedulers() (all, latest first) as cJSON. */
static PH_UNUSED cJSON *schedulers(ph *h) {
    char *json = NULL;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_get_job_schedulers(h->q, 0, -1, false, &json, &err), 0, "%s", err.message);
    cJSON *list = cJSON_Parse(json);
    bullc_free(json);
    return list;
}

static PH_UNUSED int nschedulers(ph *h) {
    cJSON *l = schedulers(h);
    int n = cJSON_GetArraySize(l);
    cJSON_Delete(l);
    return n;
}

/* ---- a manual worker: Node's worker.getNextJob(token) ---- */

typedef struct next_job {
    bool done;
    bullc_job *job;
    int code;
} next_job;

static void got_job(bullc_worker *w, bullc_job *job, int code, void *data) {
    (void)w;
    next_job *n = data;
    n->job = job;
    n->code = code;
    n->done = true;
}

static PH_UNUSED bullc_worker *manual_worker(ph *h) {
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_autorun(o, false);
    bullc_worker *w = ph_worker_ex(h, o, true);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == h->nw), "worker not ready");
    return w;
}

/* The job getNextJob hands out (Node: after it scheduled the next iteration). */
static PH_UNUSED bullc_job *get_next_job(ph *h, bullc_worker *w, const char *token) {
    next_job n = {0};
    cr_assert_eq(bullc_worker_get_next_job(w, token, false, got_job, &n), 0);
    cr_assert(PH_WAIT(h, 5000, n.done), "getNextJob did not answer");
    cr_assert_eq(n.code, 0);
    cr_assert_not_null(n.job, "no job");
    return n.job;
}

static PH_UNUSED void complete(ph *h, bullc_job *job) {
    int before = h->n_completed;
    cr_assert_eq(bullc_job_complete(job, NULL), 0);
    cr_assert(PH_WAIT(h, 5000, h->n_completed > before), "not completed");
}

static PH_UNUSED int64_t num_field(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    cr_assert(cJSON_IsNumber(v), "%s is not a number", k);
    return (int64_t)v->valuedouble;
}

/* Scheduler "test" every minute, its first iteration taken by a manual
 * worker (*w) with token "my-token" (*job); returns that iteration's slot. */
static PH_UNUSED int64_t every_minute_first_taken(ph *h, bullc_worker **w, bullc_job **job) {
    *w = manual_worker(h);
    char *id = upsert(h, "test", every(60000), NULL, NULL, NULL);
    int64_t first = strtoll(id + strlen("repeat:test:"), NULL, 10);
    bullc_free(id);
    *job = get_next_job(h, *w, "my-token");
    return first;
}

/* The queue's only scheduler is "test" (name "test") with `every`, `offset`
 * and `iterations` and no more fields, made by an upsert between t0 and t1:
 * its next iteration is due at that upsert's now, which it returns. */
static PH_UNUSED int64_t assert_the_test_scheduler(ph *h, int64_t every_ms, int64_t offset, int64_t iterations,
                                                   int64_t t0, int64_t t1) {
    cJSON *l = schedulers(h);
    cr_assert_eq(cJSON_GetArraySize(l), 1);
    cJSON *s = cJSON_GetArrayItem(l, 0);
    cr_assert_eq(cJSON_GetArraySize(s), 6, "key, name, next, iterationCount, every, offset: %s", cJSON_Print(s));
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(s, "key")->valuestring, "test");
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(s, "name")->valuestring, "test");
    int64_t next = num_field(s, "next");
    cr_assert(next >= t0 && next <= t1, "next %lld is the last upsert's now [%lld, %lld]", (long long)next,
              (long long)t0, (long long)t1);
    cr_assert_eq(num_field(s, "iterationCount"), iterations);
    cr_assert_eq(num_field(s, "every"), every_ms);
    cr_assert_eq(num_field(s, "offset"), offset);
    cJSON_Delete(l);
    return next;
}

#endif
