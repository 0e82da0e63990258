/* SPDX-License-Identifier: MIT */
/* Node BullMQ's queue.test.ts, getters.test.ts, clean.test.ts and
 * obliterate tests, reproduced with bullc's queue administration (admin.h)
 * and worker: version and meta, drain, clean, obliterate, retryJobs,
 * promoteJobs, getJobs ranges and types, getWorkers. */
#include "test_parity_util.h"

#include <math.h>
#include <unistd.h>

TestSuite(parity_queue, .timeout = 60);

/* Node's queue.count(): waiting + delayed + prioritized + waiting-children. */
static int queue_count(ph *h) {
    return ph_count(h, "waiting") + ph_count(h, "delayed") + ph_count(h, "prioritized") +
           ph_count(h, "waiting-children");
}

static cJSON *meta(ph *h) {
    char *s = NULL;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_get_meta(h->q, &s, &err), 0, "%s", err.message);
    cJSON *j = cJSON_Parse(s);
    bullc_free(s);
    return j;
}

static void noop(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete(h, job, NULL);
}
static void fails(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_fail(h, job, "Forced error", 0);
}

/* ---- version / meta ----------------------------------------------------------------- */

/* node: "should return the queue version" */
Test(parity_queue, queue_version) {
    ph *h = ph_new("q");
    cJSON *m = meta(h);
    cJSON *v = cJSON_GetObjectItemCaseSensitive(m, "version");
    cr_assert(cJSON_IsString(v));
    cr_assert_eq(strncmp(v->valuestring, "bullmq", 6), 0, "%s", v->valuestring);
    size_t n = strlen(v->valuestring);
    cr_assert(n > 6 && !strcmp(v->valuestring + n - 6, ":6.7.0"), "%s", v->valuestring);
    cJSON_Delete(m);
    ph_end(h);
}

/* node: "should return default library version when using skipMetasUpdate" */
Test(parity_queue, no_version_with_skip_meta_update) {
    ph *h = ph_new("q");
    bullc_redis_opts *o = tu_redis_opts();
    bullc_queue_opts *qo = tu_qopts();
    bullc_queue_opts_set_redis(qo, o);
    bullc_queue_opts_set_prefix(qo, h->prefix);
    bullc_queue_opts_set_skip_meta_update(qo, true);
    bullc_queue *q = NULL;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_new(&q, "ex", qo, &err), 0, "%s", err.message);
    bullc_redis_opts_free(o);
    char *s = NULL;
    cr_assert_eq(bullc_queue_get_meta(q, &s, &err), 0, "%s", err.message);
    cJSON *m = cJSON_Parse(s);
    bullc_free(s);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, "version");
    cr_assert(!v || cJSON_IsNull(v), "no version is written");
    cJSON_Delete(m);
    bullc_queue_free(q);
    ph_end(h);
}

static void check_meta_common(cJSON *m, bool paused) {
    cr_assert_eq(ph_jnum(m, "maxLenEvents"), 10000);
    ph_assert_json(m, "paused", paused ? "true" : "false");
    cJSON *v = cJSON_GetObjectItemCaseSensitive(m, "version");
    cr_assert(cJSON_IsString(v) && !strncmp(v->valuestring, "bullmq", 6));
    size_t n = strlen(v->valuestring);
    cr_assert(!strcmp(v->valuestring + n - 6, ":6.7.0"), "%s", v->valuestring);
}

/* node: "[.getMeta] should return global concurrency" */
Test(parity_queue, meta_global_concurrency) {
    ph *h = ph_new("q");
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_set_global_concurrency(h->q, 1, &err), 0);
    cJSON *m = meta(h);
    check_meta_common(m, false);
    cr_assert_eq(ph_jnum(m, "concurrency"), 1);
    cJSON_Delete(m);
    ph_end(h);
}

/* node: "[.getMeta] should return global rate limit" */
Test(parity_queue, meta_global_rate_limit) {
    ph *h = ph_new("q");
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_set_global_rate_limit(h->q, 1, 500, &err), 0);
    cJSON *m = meta(h);
    check_meta_common(m, false);
    cr_assert_eq(ph_jnum(m, "max"), 1);
    cr_assert_eq(ph_jnum(m, "duration"), 500);
    cJSON_Delete(m);
    ph_end(h);
}

/* node: "[.getMeta] should return paused" */
Test(parity_queue, meta_paused) {
    ph *h = ph_new("q");
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_pause(h->q, &err), 0);
    cJSON *m = meta(h);
    check_meta_common(m, true);
    cJSON_Delete(m);
    ph_end(h);
}

/* node: "[when empty name is provided] throws an error" */
Test(parity_queue, empty_queue_name) {
    bullc_queue *q = NULL;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_new(&q, "", NULL, &err), BULLC_EINVAL);
    cr_assert_null(q);
}

/* node: "[when removing a job] should emit removed event" */
Test(parity_queue, removed_event) {
    ph *h = ph_new("q");
    ph_qe(h);
    const char *id = ph_add(h, "q", "{\"foo\":\"bar\",\"bar\":1}", NULL);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_remove_job(h->q, id, true, &err), 0, "%s", err.message);
    cr_assert(PH_WAIT(h, 5000, ph_qe_count(h, "removed", NULL) == 1));
    cr_assert_str_eq(ph_qe_field(ph_qe_get(h, "removed", 0), "jobId"), id);
    ph_end(h);
}

/* ---- drain ------------------------------------------------------------------------------- */

/* node: "[.drain] count added, unprocessed jobs" */
Test(parity_queue, drain_prioritized_jobs) {
    ph *h = ph_new("q");
    for (int i = 1; i <= 100; i++) {
        char d[48], o[32];
        snprintf(d, sizeof d, "{\"foo\":\"bar\",\"num\":%d}", i);
        snprintf(o, sizeof o, "{\"priority\":%d}", i);
        ph_add(h, "test", d, o);
    }
    cr_assert_eq(queue_count(h), 100);
    cr_assert_eq(ph_count(h, "prioritized"), 100);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_drain(h->q, false, &err), 0, "%s", err.message);
    cr_assert_eq(queue_count(h), 0);
    ph_end(h);
}

static void add_50_and_50_delayed(ph *h) {
    for (int i = 1; i <= 50; i++) {
        char d[48];
        snprintf(d, sizeof d, "{\"foo\":\"bar\",\"num\":%d}", i);
        ph_add(h, "test", d, NULL);
    }
    for (int i = 1; i <= 50; i++) {
        char d[48];
        snprintf(d, sizeof d, "{\"foo\":\"bar\",\"num\":%d}", i);
        ph_add(h, "test", d, "{\"delay\":10000}");
    }
    cr_assert_eq(queue_count(h), 100);
}

/* node: "[when delayed option is provided as false] clean queue without delayed jobs" */
Test(parity_queue, drain_without_delayed) {
    ph *h = ph_new("q");
    add_50_and_50_delayed(h);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_drain(h->q, false, &err), 0, "%s", err.message);
    cr_assert_eq(queue_count(h), 50);
    ph_end(h);
}

/* node: "[when delayed option is provided as true] clean queue including delayed jobs" */
Test(parity_queue, drain_with_delayed) {
    ph *h = ph_new("q");
    add_50_and_50_delayed(h);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_drain(h->q, true, &err), 0, "%s", err.message);
    cr_assert_eq(queue_count(h), 0);
    ph_end(h);
}

/* node: "[when queue is paused] clean queue including paused jobs" */
Test(parity_queue, drain_while_paused) {
    ph *h = ph_new("q");
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_pause(h->q, &err), 0);
    for (int i = 1; i <= 50; i++) ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    cr_assert_eq(queue_count(h), 50);
    cr_assert_eq(ph_count(h, "wait"), 50);
    cr_assert_eq(bullc_queue_drain(h->q, false, &err), 0, "%s", err.message);
    cr_assert_eq(queue_count(h), 0);
    ph_end(h);
}

/* ---- retryJobs / promoteJobs ----------------------------------------------------------------- */

static bool fail_mode = true;
static int order_seen;
static void fail_or_pass(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (fail_mode)
        ph_fail_in(h, job, 10, "failed", 0);
    else
        ph_complete_in(h, job, 10, NULL);
}
/* each job finishes in idx order */
static void check_order(ph *h, ph_wev *e) {
    (void)h;
    char want[32];
    snprintf(want, sizeof want, "{\"idx\":%d}", order_seen);
    cr_assert_str_eq(e->data, want, "finished out of order");
    order_seen++;
}

static void eight_failed_jobs(ph *h, int64_t *ts_after_half) {
    h->proc = fail_or_pass;
    h->on_failed = check_order;
    h->on_completed = check_order;
    ph_worker(h, NULL);
    for (int i = 0; i < 8; i++) {
        char d[16];
        snprintf(d, sizeof d, "{\"idx\":%d}", i);
        ph_add(h, "test", d, NULL);
    }
    if (ts_after_half) {
        cr_assert(PH_WAIT(h, 10000, h->n_failed == 4));
        PH_RUN_FOR(h, 5);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        *ts_after_half = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        PH_RUN_FOR(h, 5);
    }
    cr_assert(PH_WAIT(h, 10000, h->n_failed == 8));
    cr_assert_eq(ph_count(h, "failed"), 8);
    order_seen = 0;
    fail_mode = false;
}

/* node: "[.retryJobs] retries all failed jobs by default" */
Test(parity_queue, retry_jobs_failed) {
    ph *h = ph_new("q");
    eight_failed_jobs(h, NULL);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_retry_jobs(h->q, NULL, 2, 0, &err), 0, "%s", err.message);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 8));
    cr_assert_eq(ph_count(h, "completed"), 8);
    ph_end(h);
}

/* node: "[when completed state is provided] retries all completed jobs" */
Test(parity_queue, retry_jobs_completed) {
    ph *h = ph_new("q");
    fail_mode = false;
    h->proc = fail_or_pass;
    ph_worker(h, NULL);
    bullc_bulk_job jobs[8];
    char data[8][16];
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < 8; i++) {
        snprintf(data[i], sizeof data[i], "{\"idx\":%d}", i);
        jobs[i] = (bullc_bulk_job){.name = "test", .data_json = data[i]};
    }
    cr_assert_eq(bullc_queue_add_bulk(h->q, jobs, 8, NULL), 0);
    for (int i = 0; i < 8; i++) bullc_free(jobs[i].id);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 8));
    cr_assert_eq(ph_count(h, "completed"), 8);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_retry_jobs(h->q, "completed", 2, 0, &err), 0, "%s", err.message);
    cr_assert_eq(ph_count(h, "completed"), 0);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 16));
    cr_assert_eq(ph_count(h, "completed"), 8);
    ph_end(h);
}

/* node: "[when timestamp is provided] should retry all failed jobs before specific timestamp" */
Test(parity_queue, retry_jobs_before_timestamp) {
    ph *h = ph_new("q");
    int64_t ts;
    eight_failed_jobs(h, &ts);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_retry_jobs(h->q, NULL, 2, ts, &err), 0, "%s", err.message);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 4));
    PH_RUN_FOR(h, 200);
    cr_assert_eq(ph_count(h, "completed"), 4);
    cr_assert_eq(ph_count(h, "failed"), 4);
    ph_end(h);
}

/* node: "[when queue is paused] moves retried jobs to wait" */
Test(parity_queue, retry_jobs_while_paused) {
    ph *h = ph_new("q");
    eight_failed_jobs(h, NULL);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_pause(h->q, &err), 0);
    cr_assert_eq(bullc_queue_retry_jobs(h->q, NULL, 2, 0, &err), 0, "%s", err.message);
    cr_assert_eq(ph_count(h, "wait"), 8);
    ph_end(h);
}

static void delay10(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete_in(h, job, 10, NULL);
}

/* node: "[.promoteJobs] promotes all delayed jobs by default" */
Test(parity_queue, promote_jobs) {
    ph *h = ph_new("q");
    for (int i = 0; i < 8; i++) {
        char d[16];
        snprintf(d, sizeof d, "{\"idx\":%d}", i);
        ph_add(h, "test", d, "{\"delay\":10000}");
    }
    cr_assert_eq(ph_count(h, "delayed"), 8);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_promote_jobs(h->q, 0, &err), 0, "%s", err.message);
    cr_assert_eq(ph_count(h, "waiting"), 8);
    h->proc = delay10;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 8));
    cr_assert_eq(ph_count(h, "delayed"), 0);
    ph_end(h);
}

/* ---- getters ---------------------------------------------------------------------------------- */

static void check_active(ph *h, bullc_job *job, int widx) {
    (void)widx;
    cJSON *a = ph_jobs(h, "active", 0, -1, false);
    cr_assert_eq(cJSON_GetArraySize(a), 1);
    ph_assert_json(cJSON_GetArrayItem(a, 0), "data", "{\"foo\":\"bar\"}");
    cJSON_Delete(a);
    ph_complete(h, job, NULL);
}

/* node: "should get active jobs" */
Test(parity_queue, get_active_jobs) {
    ph *h = ph_new("q");
    h->proc = check_active;
    ph_worker(h, NULL);
    ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 1));
    ph_end(h);
}

/* node: "should get completed jobs" */
Test(parity_queue, get_completed_jobs) {
    ph *h = ph_new("q");
    h->proc = noop;
    ph_worker(h, NULL);
    ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    ph_add(h, "test", "{\"baz\":\"qux\"}", NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 2));
    cJSON *a = ph_jobs(h, "completed", 0, -1, false);
    cr_assert(cJSON_IsArray(a));
    cr_assert_eq(cJSON_GetArraySize(a), 2);
    cJSON_Delete(a);
    ph_end(h);
}

/* node: "should get failed jobs" */
Test(parity_queue, get_failed_jobs) {
    ph *h = ph_new("q");
    h->proc = fails;
    ph_worker(h, NULL);
    ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    ph_add(h, "test", "{\"baz\":\"qux\"}", NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_failed == 2));
    cJSON *a = ph_jobs(h, "failed", 0, -1, false);
    cr_assert_eq(cJSON_GetArraySize(a), 2);
    cJSON_Delete(a);
    ph_end(h);
}

/* node: "should get all failed jobs when no range is provided" */
Test(parity_queue, get_all_failed_jobs) {
    ph *h = ph_new("q");
    h->proc = fails;
    ph_worker(h, NULL);
    ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    ph_add(h, "test", "{\"baz\":\"qux\"}", NULL);
    ph_add(h, "test", "{\"bar\":\"qux\"}", NULL);
    ph_add(h, "test", "{\"baz\":\"xuq\"}", NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_failed == 4));
    /* getFailed() defaults to 0, -1 */
    cJSON *all = ph_jobs(h, "failed", 0, -1, false);
    cr_assert_eq(cJSON_GetArraySize(all), 4);
    cJSON_Delete(all);
    ph_end(h);
}

static void three_finished(ph *h, bool fail) {
    h->proc = fail ? fails : noop;
    ph_worker(h, NULL);
    ph_add(h, "test", "{\"foo\":1}", NULL);
    ph_add(h, "test", "{\"foo\":2}", NULL);
    ph_add(h, "test", "{\"foo\":3}", NULL);
    cr_assert(PH_WAIT(h, 10000, (fail ? h->n_failed : h->n_completed) == 3));
}
static void assert_finished_fields(cJSON *a) {
    cJSON *j;
    cJSON_ArrayForEach(j, a) {
        cr_assert(!isnan(ph_jnum(j, "finishedOn")));
        cr_assert(!isnan(ph_jnum(j, "processedOn")));
    }
}
static void assert_foos(cJSON *a, int first, int n) {
    cr_assert_eq(cJSON_GetArraySize(a), n);
    for (int i = 0; i < n; i++) {
        cJSON *d = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(a, i), "data");
        cr_assert_eq(ph_jnum(d, "foo"), first + i);
    }
}

/* node: "should return all completed jobs when not setting start/end" */
Test(parity_queue, all_completed_jobs) {
    ph *h = ph_new("q");
    three_finished(h, false);
    cJSON *a = ph_jobs(h, "completed", 0, -1, false);
    cr_assert_eq(cJSON_GetArraySize(a), 3);
    assert_finished_fields(a);
    cJSON_Delete(a);
    ph_end(h);
}

/* node: "should return all failed jobs when not setting start/end" */
Test(parity_queue, all_failed_jobs) {
    ph *h = ph_new("q");
    three_finished(h, true);
    cJSON *a = ph_jobs(h, "failed", 0, -1, false);
    cr_assert_eq(cJSON_GetArraySize(a), 3);
    assert_finished_fields(a);
    cJSON_Delete(a);
    ph_end(h);
}

/* node: "should return subset of jobs when setting positive range" */
Test(parity_queue, positive_range) {
    ph *h = ph_new("q");
    three_finished(h, false);
    cJSON *a = ph_jobs(h, "completed", 1, 2, true);
    assert_foos(a, 2, 2);
    assert_finished_fields(a);
    cJSON_Delete(a);
    ph_end(h);
}

/* node: "should return subset of jobs when setting a negative range" */
Test(parity_queue, negative_range) {
    ph *h = ph_new("q");
    three_finished(h, false);
    cJSON *a = ph_jobs(h, "completed", -3, -1, true);
    assert_foos(a, 1, 3);
    cJSON_Delete(a);
    ph_end(h);
}

/* node: "should return subset of jobs when range overflows" */
Test(parity_queue, overflowing_range) {
    ph *h = ph_new("q");
    three_finished(h, false);
    cJSON *a = ph_jobs(h, "completed", -300, 99999, true);
    assert_foos(a, 1, 3);
    cJSON_Delete(a);
    ph_end(h);
}

static void add_third_and_pause(ph *h, bullc_job *job, int widx) {
    (void)widx;
    intptr_t n = (intptr_t)h->user + 1;
    h->user = (void *)n;
    if (n == 2) {
        ph_add(h, "test", "{\"foo\":3}", NULL);
        cr_assert_eq(bullc_queue_pause(h->q, NULL), 0);
    }
    ph_complete(h, job, NULL);
}

static void multiple_types_case(bool all) {
    ph *h = ph_new("q");
    h->proc = add_third_and_pause;
    ph_worker(h, NULL);
    ph_add(h, "test", "{\"foo\":1}", NULL);
    ph_add(h, "test", "{\"foo\":2}", NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 2));
    char *s = NULL;
    bullc_error err = {0};
    static const char *const types[] = {"completed", "waiting"};
    cr_assert_eq(bullc_queue_get_jobs(h->q, all ? NULL : types, all ? 0 : 2, 0, -1, false, &s, &err), 0, "%s",
                 err.message);
    cJSON *a = cJSON_Parse(s);
    bullc_free(s);
    cr_assert_eq(cJSON_GetArraySize(a), 3);
    cJSON_Delete(a);
    ph_end(h);
}

/* node: "should return jobs for multiple types" */
Test(parity_queue, jobs_for_multiple_types) { multiple_types_case(false); }

/* node: "should return jobs for all types" */
Test(parity_queue, jobs_for_all_types) { multiple_types_case(true); }

/* ---- getWorkers ------------------------------------------------------------------------------- */

static cJSON *workers(bullc_queue *q) {
    char *s = NULL;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_get_workers(q, &s, &err), 0, "%s", err.message);
    cJSON *a = cJSON_Parse(s);
    bullc_free(s);
    return a;
}
static int nworkers(bullc_queue *q) {
    cJSON *a = workers(q);
    int n = cJSON_GetArraySize(a);
    cJSON_Delete(a);
    return n;
}
static bullc_worker *idle_worker(ph *h, const char *name) {
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_autorun(o, false);
    bullc_worker_opts_set_name(o, name);
    int before = h->n_ready;
    h->proc = noop;
    bullc_worker *w = ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready > before));
    return w;
}

/* node: "gets all workers for this queue only" */
Test(parity_queue, get_workers) {
    ph *h = ph_new("q");
    idle_worker(h, NULL);
    cr_assert_eq(nworkers(h->q), 1);
    idle_worker(h, NULL);
    cr_assert_eq(nworkers(h->q), 2);
    ph_end(h);
}

/* node: "gets all workers including their names" */
Test(parity_queue, get_workers_with_names) {
    ph *h = ph_new("q");
    idle_worker(h, "worker1");
    cr_assert_eq(nworkers(h->q), 1);
    idle_worker(h, "worker2");
    cJSON *a = workers(h->q);
    cr_assert_eq(cJSON_GetArraySize(a), 2);
    bool seen1 = false, seen2 = false;
    cJSON *w;
    cJSON_ArrayForEach(w, a) {
        const char *raw = ph_qe_field(w, "rawname");
        const char *last = strrchr(raw, ':');
        cr_assert_not_null(last, "%s", raw);
        seen1 |= !strcmp(last + 1, "worker1");
        seen2 |= !strcmp(last + 1, "worker2");
    }
    cJSON_Delete(a);
    cr_assert(seen1 && seen2, "the names end the raw client names");
    ph_end(h);
}

/* node: "gets only workers related only to one queue" */
Test(parity_queue, get_workers_of_one_queue) {
    ph *h = ph_new("q");
    ph *h2 = ph_new("q2");
    snprintf(h2->prefix, sizeof h2->prefix, "%s", h->prefix);
    bullc_queue_free(h2->q);
    h2->q = tu_queue("q2", h->prefix);
    idle_worker(h, NULL);
    idle_worker(h2, NULL);
    cr_assert_eq(nworkers(h->q), 1);
    cr_assert_eq(nworkers(h2->q), 1);
    ph_end(h2);
    ph_end(h);
}

/* node: "[when disconnection happens] gets all workers even after reconnection" */
Test(parity_queue, get_workers_after_reconnection) {
    ph *h = ph_new("q");
    idle_worker(h, NULL);
    cJSON *a = workers(h->q);
    cr_assert_eq(cJSON_GetArraySize(a), 1);
    char id[32];
    snprintf(id, sizeof id, "%s", ph_qe_field(cJSON_GetArrayItem(a, 0), "id"));
    cJSON_Delete(a);
    /* the worker's blocking connection drops; the loop is not running, so it cannot come back yet */
    ph_vcmd("CLIENT KILL ID %s", id);
    usleep(10000);
    cr_assert_eq(nworkers(h->q), 0);
    cr_assert(PH_WAIT(h, 5000, nworkers(h->q) == 1), "the worker is listed again once reconnected");
    ph_end(h);
}

/* ---- clean ------------------------------------------------------------------------------------ */

static int clean(ph *h, int64_t grace, int64_t limit, const char *state) {
    char *s = NULL;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_clean(h->q, grace, limit, state, &s, &err), 0, "%s", err.message);
    cJSON *a = cJSON_Parse(s);
    bullc_free(s);
    int n = cJSON_GetArraySize(a);
    cJSON_Delete(a);
    return n;
}

/* node: "should clean two jobs from the queue" */
Test(parity_queue, clean_two_jobs) {
    ph *h = ph_new("q");
    h->proc = delay10;
    ph_worker(h, NULL);
    bullc_bulk_job jobs[2] = {{.name = "test", .data_json = "{\"some\":\"data\"}"},
                              {.name = "test", .data_json = "{\"some\":\"data\"}"}};
    cr_assert_eq(bullc_queue_add_bulk(h->q, jobs, 2, NULL), 0);
    bullc_free(jobs[0].id), bullc_free(jobs[1].id);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 2));
    PH_RUN_FOR(h, 10);
    cr_assert_eq(clean(h, 0, 0, NULL), 2);
    ph_end(h);
}

/* node: "should only remove a job outside of the grace period" */
Test(parity_queue, clean_outside_grace_period) {
    ph *h = ph_new("q");
    h->proc = noop;
    ph_worker(h, NULL);
    ph_add(h, "test", "{\"some\":\"data\"}", NULL);
    ph_add(h, "test", "{\"some\":\"data\"}", NULL);
    PH_RUN_FOR(h, 200);
    ph_add(h, "test", "{\"some\":\"data\"}", NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_completed == 3));
    clean(h, 100, 100, NULL);
    PH_RUN_FOR(h, 100);
    cJSON *a = ph_jobs(h, "completed", 0, -1, false);
    cr_assert_eq(cJSON_GetArraySize(a), 1);
    cJSON_Delete(a);
    ph_end(h);
}

/* node: "should not clean anything if all jobs are in grace period" */
Test(parity_queue, clean_nothing_in_grace_period) {
    ph *h = ph_new("q");
    ph_add(h, "test", "{\"some\":\"data\"}", NULL);
    ph_add(h, "test", "{\"some\":\"data\"}", NULL);
    cr_assert_eq(queue_count(h), 2);
    cr_assert_eq(clean(h, 5000, 2, "wait"), 0);
    cr_assert_eq(clean(h, 5000, 2, "wait"), 0);
    cr_assert_eq(queue_count(h), 2);
    ph_end(h);
}

static void fail_after_100(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_fail_in(h, job, 100, "It failed", 0);
}

/* node: "should clean all failed jobs" */
Test(parity_queue, clean_failed_jobs) {
    ph *h = ph_new("q");
    ph_qe(h);
    h->proc = fail_after_100;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_autorun(o, false);
    bullc_worker *w = ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    bullc_bulk_job jobs[2] = {{.name = "test", .data_json = "{\"some\":\"data\"}"},
                              {.name = "test", .data_json = "{\"some\":\"data\"}"}};
    cr_assert_eq(bullc_queue_add_bulk(h->q, jobs, 2, NULL), 0);
    bullc_free(jobs[0].id), bullc_free(jobs[1].id);
    bullc_worker_run(w);
    cr_assert(PH_WAIT(h, 10000, ph_qe_count(h, "failed", NULL) == 2));
    PH_RUN_FOR(h, 50);
    cr_assert_eq(clean(h, 0, 0, "failed"), 2);
    cr_assert_eq(queue_count(h), 0);
    ph_end(h);
}

/* node: "should clean all waiting jobs" */
Test(parity_queue, clean_waiting_jobs) {
    ph *h = ph_new("q");
    ph_add(h, "test", "{\"some\":\"data\"}", NULL);
    ph_add(h, "test", "{\"some\":\"data\"}", NULL);
    usleep(100000);
    cr_assert_eq(clean(h, 0, 0, "wait"), 2);
    cr_assert_eq(queue_count(h), 0);
    ph_end(h);
}

/* node: "should clean all delayed jobs when limit is given" */
Test(parity_queue, clean_delayed_with_limit) {
    ph *h = ph_new("q");
    ph_add(h, "test", "{\"some\":\"data\"}", "{\"delay\":5000}");
    ph_add(h, "test", "{\"some\":\"data\"}", "{\"delay\":5000}");
    usleep(100000);
    cr_assert_eq(clean(h, 0, 1000, "delayed"), 2);
    cr_assert_eq(queue_count(h), 0);
    ph_end(h);
}

/* node: "should clean all prioritized jobs when limit is given" */
Test(parity_queue, clean_prioritized_with_limit) {
    ph *h = ph_new("q");
    ph_add(h, "test", "{\"some\":\"data\"}", "{\"priority\":5000}");
    ph_add(h, "test", "{\"some\":\"data\"}", "{\"priority\":5001}");
    usleep(100000);
    cr_assert_eq(clean(h, 0, 1000, "prioritized"), 2);
    cr_assert_eq(queue_count(h), 0);
    ph_end(h);
}

/* node: "[when prioritized state is provided] should clean the number of jobs requested" */
Test(parity_queue, clean_prioritized_count) {
    ph *h = ph_new("q");
    ph_add(h, "test", "{\"some\":\"data\"}", "{\"priority\":1}");
    ph_add(h, "test", "{\"some\":\"data\"}", "{\"priority\":2}");
    ph_add(h, "test", "{\"some\":\"data\"}", "{\"priority\":3}");
    usleep(100000);
    cr_assert_eq(clean(h, 0, 1, "prioritized"), 1);
    cr_assert_eq(ph_count(h, "prioritized"), 2);
    ph_end(h);
}

/* node: "[when delayed state is provided] cleans all delayed jobs" */
Test(parity_queue, clean_delayed) {
    ph *h = ph_new("q");
    ph_add(h, "test", "{\"some\":\"data\"}", "{\"delay\":5000}");
    ph_add(h, "test", "{\"some\":\"data\"}", "{\"delay\":5000}");
    usleep(100000);
    cr_assert_eq(clean(h, 0, 0, "delayed"), 2);
    cr_assert_eq(queue_count(h), 0);
    ph_end(h);
}

/* node: "[when delayed state is provided] does not clean anything if all jobs are in grace period" */
Test(parity_queue, clean_delayed_in_grace_period) {
    ph *h = ph_new("q");
    ph_add(h, "test", "{\"some\":\"data\"}", "{\"delay\":5000}");
    ph_add(h, "test", "{\"some\":\"data\"}", "{\"delay\":5000}");
    usleep(100000);
    cr_assert_eq(clean(h, 5000, 2, "delayed"), 0);
    cr_assert_eq(queue_count(h), 2);
    ph_end(h);
}

/* node: "should accept both "wait" and "waiting" in clean method" */
Test(parity_queue, clean_wait_and_waiting) {
    ph *h = ph_new("q");
    for (int i = 0; i < 3; i++) ph_add(h, "test", "{\"some\":\"data\"}", NULL);
    usleep(100000);
    cr_assert_eq(ph_count(h, "waiting"), 3);
    cr_assert_eq(clean(h, 0, 2, "wait"), 2);
    cr_assert_eq(queue_count(h), 1);
    ph_add(h, "test", "{\"some\":\"data\"}", NULL);
    ph_add(h, "test", "{\"some\":\"data\"}", NULL);
    usleep(100000);
    cr_assert_eq(clean(h, 0, 10, "waiting"), 3);
    cr_assert_eq(queue_count(h), 0);
    ph_end(h);
}

static void it_failed(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_fail(h, job, "It failed", 0);
}

/* node: "should clean a job without a timestamp" */
Test(parity_queue, clean_job_without_timestamp) {
    ph *h = ph_new("q");
    h->proc = it_failed;
    ph_worker(h, NULL);
    const char *id = ph_add(h, "test", "{\"some\":\"data\"}", NULL);
    ph_add(h, "test", "{\"some\":\"data\"}", NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_failed == 2));
    PH_RUN_FOR(h, 100);
    ph_vcmd("HDEL %s timestamp", ph_key(h, id));
    cr_assert_eq(clean(h, 0, 0, "failed"), 2);
    cJSON *a = ph_jobs(h, "failed", 0, -1, false);
    cr_assert_eq(cJSON_GetArraySize(a), 0);
    cJSON_Delete(a);
    ph_end(h);
}

/* ---- obliterate --------------------------------------------------------------------------------- */

static int keys_left(ph *h) {
    redisReply *r = ph_cmd("KEYS %s:%s:*", h->prefix, h->qname);
    int n = (int)r->elements;
    freeReplyObject(r);
    return n;
}

static void fail_first_then_250(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (!h->user) {
        h->user = (void *)1;
        ph_fail(h, job, "failed first", 0);
    } else {
        ph_complete_in(h, job, 250, NULL);
    }
}

/* Four jobs (the second is `*job`), the worker of the Node tests, until `job` finished. */
static void jobs_in_different_states(ph *h, const char **job) {
    ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    *job = ph_add(h, "test", "{\"qux\":\"baz\"}", NULL);
    ph_add(h, "test", "{\"foo\":\"bar2\"}", NULL);
    ph_add(h, "test", "{\"foo\":\"bar3\"}", "{\"delay\":5000}");
    h->proc = fail_first_then_250;
    ph_worker(h, NULL);
    const char *id = *job;
    cr_assert(PH_WAIT(h, 10000, ph_wcount(h, 'c', id) == 1));
}

/* node: "should raise exception if queue has active jobs" */
Test(parity_queue, obliterate_with_active_jobs) {
    ph *h = ph_new("q");
    const char *job;
    jobs_in_different_states(h, &job);
    cr_assert(PH_WAIT(h, 5000, h->in_process == 1), "the third job is being processed");
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_obliterate(h->q, false, 0, &err), BULLC_ESTATE);
    cr_assert(strstr(err.message, "Cannot obliterate queue with active jobs"), "%s", err.message);
    ph_end(h);
}

/* node: "should obliterate if queue has active jobs using "force"" */
Test(parity_queue, obliterate_forced) {
    ph *h = ph_new("q");
    const char *job;
    jobs_in_different_states(h, &job);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_obliterate(h->q, true, 0, &err), 0, "%s", err.message);
    cr_assert_eq(keys_left(h), 0);
    ph_end(h);
}

/* node: "should obliterate a queue with jobs in different statuses" */
Test(parity_queue, obliterate_jobs_in_different_statuses) {
    ph *h = ph_new("q");
    ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    ph_add(h, "test", "{\"foo\":\"bar2\"}", NULL);
    ph_add(h, "test", "{\"foo\":\"bar3\"}", "{\"delay\":5000}");
    const char *last = ph_add(h, "test", "{\"qux\":\"baz\"}", NULL);
    h->proc = fail_first_then_250;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 10000, ph_wcount(h, 'c', last) == 1));
    PH_RUN_FOR(h, 20);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_obliterate(h->q, false, 0, &err), 0, "%s", err.message);
    cr_assert_eq(keys_left(h), 0);
    ph_end(h);
}

static void log_after_100(ph *h, bullc_job *job, int widx) {
    (void)widx;
    bullc_job_log(job, "Lorem Ipsum Dolor Sit Amet", NULL, NULL);
    ph_complete_in(h, job, 100, NULL);
}

/* node: "should remove job logs" */
Test(parity_queue, obliterate_removes_logs) {
    ph *h = ph_new("q");
    h->proc = log_after_100;
    ph_worker(h, NULL);
    const char *id = ph_add(h, "test", "{}", NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 1));
    cr_assert_eq(ph_log_count(h, id), 1);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_obliterate(h->q, true, 0, &err), 0, "%s", err.message);
    cr_assert_eq(ph_log_count(h, id), 0);
    ph_end(h);
}

/* node: "should obliterate an empty queue" */
Test(parity_queue, obliterate_empty_queue) {
    ph *h = ph_new("q");
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_ping(h->q, &err), 0);
    cr_assert_eq(bullc_queue_obliterate(h->q, false, 0, &err), 0, "%s", err.message);
    cr_assert_eq(keys_left(h), 0);
    ph_end(h);
}

/* node: "should obliterate a queue which is empty but has had jobs in the past" */
Test(parity_queue, obliterate_queue_that_had_jobs) {
    ph *h = ph_new("q");
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_remove_job(h->q, id, true, &err), 0);
    cr_assert_gt(keys_left(h), 0);
    cr_assert_eq(bullc_queue_obliterate(h->q, false, 0, &err), 0, "%s", err.message);
    cr_assert_eq(keys_left(h), 0);
    ph_end(h);
}

static bool fail_now;
static void fail_if_asked(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (fail_now)
        ph_fail(h, job, "failed job", 0);
    else
        ph_complete(h, job, NULL);
}

/* node: "should obliterate a queue with high number of jobs in different statuses" */
Test(parity_queue, obliterate_many_jobs) {
    ph *h = ph_new("q");
    enum { N = 300, D = 1623 };
    static bullc_bulk_job jobs[D];
    static char data[D][32];
    for (int i = 0; i < D; i++) {
        snprintf(data[i], sizeof data[i], "{\"foo\":\"barLoop%d\"}", i);
        jobs[i] = (bullc_bulk_job){.name = "test", .data_json = data[i]};
    }
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_add_bulk(h->q, jobs, N, &err), 0, "%s", err.message);
    h->proc = fail_if_asked;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 20000, h->n_completed == N));
    fail_now = true;
    for (int i = 0; i < N; i++) bullc_free(jobs[i].id), jobs[i].id = NULL;
    cr_assert_eq(bullc_queue_add_bulk(h->q, jobs, N, &err), 0, "%s", err.message);
    cr_assert(PH_WAIT(h, 20000, h->n_failed == N));
    ph_close_worker(h, 0, false);
    for (int i = 0; i < N; i++) bullc_free(jobs[i].id), jobs[i].id = NULL;
    bullc_job_opts *d;
    bullc_job_opts_new(&d);
    bullc_job_opts_set_delay(d, 10000);
    for (int i = 0; i < D; i++) jobs[i].opts = d;
    cr_assert_eq(bullc_queue_add_bulk(h->q, jobs, D, &err), 0, "%s", err.message);
    for (int i = 0; i < D; i++) bullc_free(jobs[i].id);
    bullc_job_opts_free(d);
    cr_assert_eq(bullc_queue_obliterate(h->q, false, 0, &err), 0, "%s", err.message);
    redisReply *r = ph_cmd("KEYS %s:%s*", h->prefix, h->qname);
    cr_assert_eq(r->elements, 0);
    freeReplyObject(r);
    ph_end(h);
}
